#!/bin/bash
echo "running hooks in $1"
