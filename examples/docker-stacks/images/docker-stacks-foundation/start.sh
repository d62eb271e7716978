#!/bin/bash
exec run-hooks.sh /usr/local/bin/start-notebook.d "$@"
