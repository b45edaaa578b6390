#!/bin/bash
# homekey's container entry point. `podman run IMAGE` runs `homekey serve -c
# /data/homeserver.yaml`; `podman run IMAGE generate-config …` (any homekey command) runs
# that command; `podman run IMAGE homekey …`, `… hash_password …`, `… bash` run as given.
set -euo pipefail

case "${1:-}" in
  homekey | hash_password | register_new_matrix_user | bash | sh | /*) exec "$@" ;;
esac

# serve with a config file that is not there: say how to make one, make nothing.
if [[ "${1:-}" == serve ]]; then
  config="${HOMEKEY_CONFIG:-}"
  args=("$@")
  for ((i = 1; i < ${#args[@]}; i++)); do
    case "${args[i]}" in
      -c | --config) config="${args[i + 1]:-}" ;;
      --config=*) config="${args[i]#--config=}" ;;
    esac
  done
  if [[ -n "$config" && ! -e "$config" ]]; then
    cat >&2 <<MSG
homekey: no config at $config; nothing was created. Make one in the data volume first
(fresh secrets, SQLite in /data/homekey-data, port 8008 of the container), with your own
server name, volume and image:

  podman run --rm -v homekey-data:/data homekey \\
      generate-config --server-name example.com -c $config --listen 0.0.0.0:8008

then start the container again (for PostgreSQL, edit the file's database: section first;
see the README's "Container" section).
MSG
    exit 1
  fi
fi
exec /usr/local/bin/homekey "$@"
