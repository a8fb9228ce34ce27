#!/usr/bin/env bash
# Runs a command in which arm64 programs start like native ones: a private binfmt_misc
# instance (Linux >= 6.7 gives each user namespace its own) sends every aarch64 ELF to
# qemu-aarch64-static, so an arm64 test can start the arm64 programs as child processes.
# Nothing outside the command's own user and mount namespaces changes.
#   cross/with-binfmt.sh COMMAND [ARGS...]
# Exit 125 when the kernel or sandbox does not allow it (no user namespaces, older kernel).
set -euo pipefail
qemu=$(command -v qemu-aarch64-static || true)
[ -n "$qemu" ] || { echo "with-binfmt: qemu-aarch64-static is not installed" >&2; exit 125; }
exec unshare --user --map-root-user --mount -- bash -c '
  set -e
  # Its usual place, in this mount namespace only; it must stay mounted while it is used.
  mnt=/proc/sys/fs/binfmt_misc
  if ! mount -t binfmt_misc binfmt_misc "$mnt" 2>/dev/null; then
    echo "with-binfmt: cannot mount a private binfmt_misc (Linux >= 6.7 needed)" >&2; exit 125
  fi
  # The aarch64 ELF header, as Debian'"'"'s qemu-user-static registers it; F: the interpreter
  # is opened now, so it works in any mount namespace.
  printf "%s" ":qemu-aarch64:M::\x7fELF\x02\x01\x01\x00\x00\x00\x00\x00\x00\x00\x00\x00\x02\x00\xb7\x00:\xff\xff\xff\xff\xff\xff\xff\x00\xff\xff\xff\xff\xff\xff\xff\xff\xfe\xff\xff\xff:$0:F" \
    >"$mnt/register"
  exec "$@"
' "$qemu" "$@"
