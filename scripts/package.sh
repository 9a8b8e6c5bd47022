#!/usr/bin/env bash
# Builds a Debian package of the extension for the system PostgreSQL 15, for DBAs without a Rust
# toolchain: target/debian/postgresql-15-customer-value_<version>_<arch>.deb holding the library,
# the control file and every SQL script (install and upgrades), with its dependencies computed
# from the library (dpkg-shlibdeps). Prints the package's path on the last line.
# Usage: scripts/package.sh
source "$(dirname "$0")/common.sh"
cd "$ROOT"
ensure_toolchain
VERSION=$(sed -n 's/^version = "\(.*\)"/\1/p' Cargo.toml | head -1)
ARCH=$(dpkg --print-architecture)
NAME=postgresql-$PG_MAJOR-customer-value
BUILD=$ROOT/target/debian/build
DEB=$ROOT/target/debian/${NAME}_${VERSION}_${ARCH}.deb
rm -rf "$BUILD" && mkdir -p "$BUILD"

step "building the extension's files (cargo pgrx package, release)"
cargo pgrx package --pg-config "$PG_CONFIG" --out-dir "$BUILD/root" >/dev/null
LIB=$("$PG_CONFIG" --pkglibdir)/customer_value.so
SHARE=$("$PG_CONFIG" --sharedir)/extension
[ -f "$BUILD/root$LIB" ] || { echo "cargo pgrx package wrote no $LIB" >&2; exit 1; }
# the upgrade scripts of earlier releases, which pgrx does not package
cp sql/customer_value--*--*.sql "$BUILD/root$SHARE/"
DOC=$BUILD/root/usr/share/doc/$NAME
mkdir -p "$DOC"
cp README.md CHANGELOG.md "$DOC/"
printf 'customer_value %s\nLicense: MIT\n' "$VERSION" > "$DOC/copyright"

step "computing dependencies (dpkg-shlibdeps)"
mkdir -p "$BUILD/debian"
printf 'Source: customer-value\n\nPackage: %s\nArchitecture: any\n' "$NAME" > "$BUILD/debian/control"
SHLIBS=$(cd "$BUILD" && dpkg-shlibdeps -O --ignore-missing-info "root$LIB" 2>/dev/null \
         | sed -n 's/^shlibs:Depends=//p')
mkdir -p "$BUILD/root/DEBIAN"
cat > "$BUILD/root/DEBIAN/control" <<CONTROL
Package: $NAME
Version: $VERSION
Architecture: $ARCH
Maintainer: customer_value developers <customer-value@localhost>
Section: database
Priority: optional
Depends: postgresql-$PG_MAJOR, ${SHLIBS}
Suggests: postgresql-$PG_MAJOR-cron
Installed-Size: $(du -sk "$BUILD/root" | cut -f1)
Description: customer-value models inside PostgreSQL $PG_MAJOR
 Train customer-value models (CLV, spend, tiers, churn) from tables with one SQL call, keep them
 as versioned rows, and score customers in place with customer_value(row) and
 customer_tier(row). After installing: CREATE EXTENSION customer_value;
CONTROL

step "building $DEB"
dpkg-deb --root-owner-group --build "$BUILD/root" "$DEB" >/dev/null
dpkg-deb --info "$DEB" | sed -n 's/^ //p' | grep -E '^(Package|Version|Depends):'
echo "$DEB"
