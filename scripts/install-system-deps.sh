#!/usr/bin/env bash
# Debian packages feedlens needs: WordNet 3.0 (ImageNet class ids are WordNet noun offsets; the labels
# analyzer's concept tree is built from it at `feedlens store pull`) and Tesseract with English (the
# second OCR engine, which keeps the spaces between Latin words). PostgreSQL 15 server binaries (the tests
# start a throwaway cluster from /usr/lib/postgresql/15/bin; Debian does not put initdb on PATH), Chromium
# (the browser tests drive it) and npm (`npm ci` installs the web app's Chart.js from its lockfile). Tux
# Paint's stamps: real labelled photos (animals, food, vehicles...) with English descriptions, the category
# tests' and benchmark's labelled set (tests/support/tuxpaint.py); without recommends, which would pull in
# Tux Paint itself.
set -euo pipefail
extra=()
[ -d /usr/share/tuxpaint/stamps ] || extra+=(tuxpaint-stamps-default)
need=()
[ -f /usr/share/wordnet/data.noun ] || need+=(wordnet-base)
command -v tesseract >/dev/null || need+=(tesseract-ocr)
ls /usr/share/tesseract-ocr/*/tessdata/eng.traineddata >/dev/null 2>&1 || need+=(tesseract-ocr-eng)
[ -x /usr/lib/postgresql/15/bin/initdb ] && [ -x /usr/lib/postgresql/15/bin/pg_ctl ] || need+=(postgresql-15)
command -v chromium >/dev/null || need+=(chromium)
command -v npm >/dev/null || need+=(npm)
if [ ${#need[@]} -eq 0 ] && [ ${#extra[@]} -eq 0 ]; then exit 0; fi
if [ "$(id -u)" -ne 0 ]; then
  echo "feedlens set-up needs these Debian packages: ${need[*]} ${extra[*]}" >&2
  echo "install them with: sudo apt-get install -y ${need[*]} ${extra[*]}" >&2
  exit 1
fi
export DEBIAN_FRONTEND=noninteractive
install() {
  apt-get install -y -q "$@" >/dev/null 2>&1 || { apt-get update -q >/dev/null && apt-get install -y -q "$@"; }
}
if [ ${#need[@]} -gt 0 ]; then install "${need[@]}"; fi
if [ ${#extra[@]} -gt 0 ]; then install --no-install-recommends "${extra[@]}"; fi
