#!/bin/sh
# Runs a command in a network namespace of its own, with only loopback up. Karpenter binds its
# metrics and health ports on every interface (it has no address option); in here every
# interface is loopback. Nested calls run the command as it is. Without the right to create a
# namespace (no root, no user namespaces) the command runs as it is and the tests that need the
# namespace skip, saying why.
set -eu
if [ -n "${INFOP_NETNS:-}" ]; then exec "$@"; fi
for flags in -n -rn; do
  if unshare $flags ip link set lo up 2>/dev/null; then
    exec unshare $flags -- env INFOP_NETNS=1 sh -c 'ip link set lo up && exec "$@"' netns "$@"
  fi
done
echo "netns.sh: cannot create a network namespace here; running without one" >&2
exec "$@"
