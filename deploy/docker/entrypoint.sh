#!/bin/sh
# Entry point of the Pathways image: the first argument names the process to run.
#
#   gateway | referrals | casework | outcomes | reporting
#       serve that service with uvicorn, exactly as `make run`'s supervisor does, on
#       <SERVICE>_HOST (default 0.0.0.0) and <SERVICE>_PORT (default 8000) -- the
#       same variables the service's settings class reads.
#   migrate [--check] [--service NAME]...
#       the one-shot database job (`pathways migrate`, see pathways/migrate_job.py).
#   anything else
#       run as a command (e.g. `python -m pathways.cli --help`).
set -eu

usage() {
    echo "usage: pathways-entrypoint gateway|referrals|casework|outcomes|reporting" >&2
    echo "       pathways-entrypoint migrate [--check] [--service NAME]..." >&2
    echo "       pathways-entrypoint COMMAND [ARG]..." >&2
}

case "${1:-}" in
    gateway | referrals | casework | outcomes | reporting)
        service=$1
        shift
        prefix=$(printf '%s' "$service" | tr '[:lower:]' '[:upper:]')
        # $prefix is one of the five names above, so eval only ever reads a variable.
        eval "host=\${${prefix}_HOST:-0.0.0.0}"
        eval "port=\${${prefix}_PORT:-8000}"
        # exec: uvicorn becomes PID 1 and receives SIGTERM for a graceful shutdown.
        exec python -m uvicorn "services.${service}.app:create_app" --factory \
            --host "$host" --port "$port" \
            --no-access-log --timeout-graceful-shutdown 10 \
            --loop uvloop --http httptools "$@"
        ;;
    migrate)
        shift
        exec python -m pathways.cli migrate "$@"
        ;;
    "" | -h | --help)
        usage
        exit 64
        ;;
    *)
        exec "$@"
        ;;
esac
