"""One module per `kubetune` command; kubetune/cli.py registers each with one line."""
