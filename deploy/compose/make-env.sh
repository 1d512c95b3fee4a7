#!/bin/sh
# Write .env for docker-compose.yml with fresh random secrets.
#
#   deploy/compose/make-env.sh [PATH]     (default: .env next to docker-compose.yml)
#
# Refuses to overwrite an existing file: the database and broker were initialised with
# the secrets it holds. (To rotate a service's database password: edit it there and run
# `docker compose run --rm migrate`, then `docker compose up -d`; see docs/deploy.md.)
set -eu

here=$(cd "$(dirname "$0")" && pwd)
target=${1:-"$here/../../.env"}

if [ -e "$target" ]; then
    echo "$target exists; not overwriting it (it holds the live secrets)" >&2
    exit 1
fi

secret() {
    # 24 random bytes as 48 hex characters: URL-safe, so fit for the URLs in compose.
    od -An -N24 -tx1 /dev/urandom | tr -d ' \n'
}

umask 077
tmp="$target.tmp.$$"
trap 'rm -f "$tmp"' EXIT
{
    echo "# Written by deploy/compose/make-env.sh on $(date -u +%Y-%m-%dT%H:%M:%SZ). Keep private."
    grep -E '^[A-Z_]+=' "$here/env.example" | while IFS='=' read -r name value; do
        case "$name" in
            PATHWAYS_ADMIN_TOKEN) echo "$name=adm_$(secret)" ;;
            *_PASSWORD | PATHWAYS_INTERNAL_SECRET) echo "$name=$(secret)" ;;
            *) echo "$name=$value" ;;
        esac
    done
} >"$tmp"
mv "$tmp" "$target"
trap - EXIT
echo "wrote $target (mode 600); the admin token is PATHWAYS_ADMIN_TOKEN in it"
