#!/usr/bin/env bash
# Checks that a finished build used no system package that tools/setup.sh does not install, directly or
# through the packages it installs (their Depends/Pre-Depends, recursively), nor Debian's essential set: the fault that once let CI pass
# only because a package had been installed by hand (issue 10). Run after a build; CI runs it.
# Usage: tools/check_build_deps.sh BUILD_DIR...
# What the build touched: every absolute path in the compilers' depfiles (*.d, compiler_depend.make), the link
# lines (link.txt; -lNAME resolved as the compiler would), and CMakeCache.txt (found libraries, headers,
# programs, and the files of every <Package>_DIR package config). Each file is mapped to its Debian package
# (dpkg's file lists); the CUDA toolkit (/usr/local/cuda*, and its copies in /usr/local/{include,lib,bin}) is
# the one dependency outside Debian's packages. Exit 1 naming each package (or unowned file) that is neither.
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd -P)
[ $# -gt 0 ] || { sed -n '5p' "${BASH_SOURCE[0]}" | sed 's/^# //' >&2; exit 2; }
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

# ---- 1. the files the build touched ----
cxx=${CXX:-c++}
builds=()
for build in "$@"; do
  [ -f "$build/CMakeCache.txt" ] || { echo "check_build_deps: $build: no CMakeCache.txt (not a build directory)" >&2; exit 2; }
  builds+=("$(cd "$build" && pwd -P)")
  # The build's own source tree (it may be another checkout than this script's) is the project, not the system.
  builds+=("$(readlink -f "$(sed -n 's/^CMAKE_HOME_DIRECTORY:INTERNAL=//p' "$build/CMakeCache.txt")")")
done
for build in "$@"; do
  {
    find "$build" \( -name '*.d' -o -name compiler_depend.make -o -name depend.make \) -type f \
      -exec cat {} + 2>/dev/null | tr ' \t' '\n\n' | sed -e 's/\\$//' -e 's/:$//'
    find "$build" -name link.txt -type f -exec cat {} + | tr ' \t' '\n\n'
    # -lNAME on a link line: the library the compiler driver would pick.
    find "$build" -name link.txt -type f -exec cat {} + | tr ' \t' '\n\n' | sed -n 's/^-l\(.*\)$/\1/p' | sort -u |
      while read -r lib; do
        for ext in so a; do
          f=$("$cxx" -print-file-name="lib$lib.$ext")
          [ "$f" != "lib$lib.$ext" ] && echo "$f"
        done
      done
    # CMakeCache values: FOO_LIBRARY=/usr/lib/..., BAR_DIR=/usr/lib/.../cmake/bar (its config files), lists.
    sed -n 's/^[A-Za-z0-9_.+-]*:[A-Z]*=//p' "$build/CMakeCache.txt" | tr ';' '\n'
    sed -n 's/^[A-Za-z0-9_.+-]*_DIR:[A-Z]*=\(\/.*\)$/\1/p' "$build/CMakeCache.txt" | while read -r dir; do
      [ -d "$dir" ] && find "$dir" -maxdepth 1 -name '*.cmake' -type f
    done
  } | grep '^/' | sed 's/[",]//g'
done | sort -u >"$work/paths"

# Regular files outside the project (sources, build trees), each with its real path beside it.
while read -r p; do
  [ -f "$p" ] || continue
  real=$(readlink -f "$p")
  case "$real" in "$root"/* | /proc/*) continue ;; esac
  for tree in "${builds[@]}"; do
    case "$real" in "$tree"/*) continue 2 ;; esac
  done
  printf '%s\t%s\n' "$p" "$real"
done <"$work/paths" | sort -u >"$work/files"

# ---- 2. file -> Debian package (dpkg's lists; merged /usr: /lib == /usr/lib, /bin == /usr/bin) ----
for list in /var/lib/dpkg/info/*.list; do
  pkg=$(basename "$list" .list)
  awk -v pkg="${pkg%%:*}" '{ print $0 "\t" pkg }' "$list"
done | awk -F'\t' '{ print; if ($1 ~ /^\/usr\/(lib|lib64|bin|sbin)\//) { p = $1; sub(/^\/usr/, "", p); print p "\t" $2 }
                    else if ($1 ~ /^\/(lib|lib64|bin|sbin)\//) print "/usr" $1 "\t" $2 }' >"$work/owners"

# ---- 3. what setup.sh installs, and everything those packages depend on ----
"$root/tools/setup.sh" --print-packages >"$work/listed"
# shellcheck disable=SC2046
apt-cache depends --recurse --installed --no-recommends --no-suggests --no-conflicts --no-breaks \
  --no-replaces --no-enhances $(cat "$work/listed") 2>/dev/null | grep -v '^ ' | tr -d '<>' |
  sed 's/:.*//' | sort -u >"$work/allowed"
cat "$work/listed" >>"$work/allowed"
# Essential and required packages are on every Debian system (coreutils' uname, which CMake records).
dpkg-query -W -f='${Package} ${Essential} ${Priority}\n' | awk '$2 == "yes" || $3 == "required" { print $1 }' >>"$work/allowed"
sort -u -o "$work/allowed" "$work/allowed"

# ---- 4. judge every file ----
awk -F'\t' -v cuda="$(readlink -f /usr/local/cuda 2>/dev/null || echo /usr/local/cuda)" '
  FILENAME == ARGV[1] { owner[$1] = owner[$1] (owner[$1] == "" ? "" : ",") $2; next }
  FILENAME == ARGV[2] { allowed[$1] = 1; next }
  {
    path = $1; real = $2
    o = owner[path] != "" ? owner[path] : owner[real]
    if (o == "") {
      if (path ~ /^\/usr\/local\/cuda/ || index(real, cuda) == 1) next  # the CUDA toolkit
      if (path ~ /^\/usr\/local\/(include|lib|bin)\//) {  # the toolkit copied into /usr/local
        sub(/^\/usr\/local\/lib\//, cuda "/lib64/", path); sub(/^\/usr\/local\//, cuda "/", path)
        if ((getline line < path) >= 0) { close(path); next }
      }
      print "unowned\t" $1
      next
    }
    ok = 0; m = split(o, pkgs, ",")
    for (i = 1; i <= m; i++) if (pkgs[i] in allowed) ok = 1
    if (!ok) print o "\t" $1
  }' "$work/owners" "$work/allowed" "$work/files" | sort >"$work/bad"

checked=$(wc -l <"$work/files")
if [ ! -s "$work/bad" ]; then
  echo "check_build_deps: $checked system files the build used; each is the CUDA toolkit's or comes from a package tools/setup.sh installs"
  exit 0
fi
echo "check_build_deps: the build used system files that tools/setup.sh does not install (a fresh machine lacks them):" >&2
awk -F'\t' '{ files[$1] = files[$1] "\n      " $2; count[$1]++ }
  END { for (p in files) {
          if (p == "unowned") printf "  no Debian package owns (installed by hand?):%s\n", files[p]
          else printf "  package %s (%d file(s)); add it to tools/setup.sh or stop using it:%s\n", p, count[p], files[p] } }' \
  "$work/bad" | head -c 20000 >&2
exit 1
