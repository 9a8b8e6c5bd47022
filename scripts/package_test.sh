#!/usr/bin/env bash
# The Debian package, tested as a DBA would use it: builds it (scripts/package.sh), removes the
# extension's installed files, installs the package with dpkg, checks that it placed every file,
# runs the golden SQL tests against what the package installed in a fresh cluster, and removes
# the package again (later test steps install from source as usual).
source "$(dirname "$0")/common.sh"
lock_install
cd "$ROOT"
DEB=$(bash "$ROOT/scripts/package.sh" | tail -1)
NAME=$(dpkg-deb --field "$DEB" Package)
LIB=$("$PG_CONFIG" --pkglibdir)/customer_value.so
SHARE=$("$PG_CONFIG" --sharedir)/extension

step "installing $(basename "$DEB") with dpkg (the extension's files from source removed first)"
$SUDO rm -f "$LIB" "$SHARE"/customer_value.control "$SHARE"/customer_value--*.sql
$SUDO dpkg -i "$DEB" >/dev/null
trap '$SUDO dpkg --purge "$NAME" >/dev/null || true' EXIT
dpkg-query -W -f='${Status} ${Version}\n' "$NAME"
# every file the package lists is on disk, and the library loads the versions the control names
dpkg -L "$NAME" | while read -r f; do [ -e "$f" ] || { echo "missing after install: $f" >&2; exit 1; }; done
for f in "$LIB" "$SHARE/customer_value.control"; do
    dpkg -S "$f" >/dev/null || { echo "$f is not from the package" >&2; exit 1; }
done
ls "$SHARE"/customer_value--*.sql | sed 's|.*/||' | tr '\n' ' '; echo

step "golden SQL tests against the packaged extension"
bash "$ROOT/scripts/regress.sh" --installed
