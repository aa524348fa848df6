from kubetune.cli import entry

entry()
