"""Plain nn.Modules; each takes the data's input_shape and num_classes."""
