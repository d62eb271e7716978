#!/bin/bash
exec /usr/local/bin/start-notebook.py "$@"
