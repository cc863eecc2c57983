from sweeplab.cli import entry

entry()
