#!/bin/bash
julia -e 'import Pkg; Pkg.add("IJulia")'
