#!/bin/bash
exec /usr/local/bin/start-singleuser.py "$@"
