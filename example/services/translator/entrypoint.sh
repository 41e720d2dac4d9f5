#!/bin/sh
exec python3 -m src.main "$@"
