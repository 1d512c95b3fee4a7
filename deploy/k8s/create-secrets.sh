#!/bin/sh
# Create the Secrets the Pathways manifests refer to (the manifests never contain any).
#
#   deploy/k8s/create-secrets.sh NAMESPACE
#
# Generates a random value for each secret and creates, in NAMESPACE:
#
#   pathways-secrets       internal-secret, admin-token    (every service / the gateway)
#   pathways-amqp          username, password, url         (RabbitMQ user + services' URL)
#   pathways-db-<service>  url                             (one per service: its own role)
#   pathways-backup-s3     ACCESS_KEY_ID, ACCESS_SECRET_KEY (only if BACKUP_ACCESS_KEY_ID and
#                                                          BACKUP_ACCESS_SECRET_KEY are set)
#
# CloudNativePG makes pathways-db-superuser itself. A Secret that already exists is kept
# as it is (the database and broker were set up with it): to rotate one, delete it, run
# this again, then re-run the migrate Job and restart the Deployments (docs/deploy.md).
# Values never appear on a command line: each goes through a private temporary file.
set -eu

ns=${1:?usage: create-secrets.sh NAMESPACE}
services="gateway referrals casework outcomes reporting"

secret() {
    # 24 random bytes as 48 hex characters: URL-safe, so fit for the URLs below.
    od -An -N24 -tx1 /dev/urandom | tr -d ' \n'
}

workdir=$(mktemp -d)
trap 'rm -rf "$workdir"' EXIT
chmod 700 "$workdir"

# create NAME: reads KEY=VALUE lines on stdin; keeps an existing Secret untouched.
create() {
    name=$1
    if kubectl -n "$ns" get secret "$name" >/dev/null 2>&1; then
        cat >/dev/null
        echo "secret/$name exists; kept"
        return 0
    fi
    (umask 077 && cat >"$workdir/$name.env")
    kubectl -n "$ns" create secret generic "$name" --from-env-file="$workdir/$name.env"
    rm -f "$workdir/$name.env"
}

printf 'internal-secret=%s\nadmin-token=adm_%s\n' "$(secret)" "$(secret)" | create pathways-secrets

amqp_password=$(secret)
printf 'username=pathways\npassword=%s\nurl=amqp://pathways:%s@pathways-mq.%s.svc:5672/pathways\n' \
    "$amqp_password" "$amqp_password" "$ns" | create pathways-amqp

for service in $services; do
    printf 'url=postgresql+asyncpg://pathways_%s:%s@pathways-db-rw.%s.svc:5432/pathways\n' \
        "$service" "$(secret)" "$ns" | create "pathways-db-$service"
done

if [ -n "${BACKUP_ACCESS_KEY_ID:-}" ] && [ -n "${BACKUP_ACCESS_SECRET_KEY:-}" ]; then
    printf 'ACCESS_KEY_ID=%s\nACCESS_SECRET_KEY=%s\n' \
        "$BACKUP_ACCESS_KEY_ID" "$BACKUP_ACCESS_SECRET_KEY" | create pathways-backup-s3
else
    echo "pathways-backup-s3 not created (set BACKUP_ACCESS_KEY_ID and BACKUP_ACCESS_SECRET_KEY" \
        "to create it; the production overlay's backups need it)"
fi

echo "the gateway's admin token: kubectl -n $ns get secret pathways-secrets" \
    "-o jsonpath='{.data.admin-token}' | base64 -d"
