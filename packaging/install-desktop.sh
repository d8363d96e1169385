#!/bin/sh
# Install (or remove) the freedesktop menu entry and icons of unmix-desktop for the current user.
#
#   sh packaging/install-desktop.sh install      # what `make install-desktop` runs
#   sh packaging/install-desktop.sh uninstall    # what `make uninstall-desktop` runs
#
# Files go to $XDG_DATA_HOME (default ~/.local/share):
#   applications/unmix-desktop.desktop
#   icons/hicolor/<N>x<N>/apps/unmix-desktop.png and icons/hicolor/scalable/apps/unmix-desktop.svg
# The entry's Exec is, in order: $UNMIX_EXEC if set, this checkout's PyInstaller bundle
# (dist/unmix-desktop/unmix-desktop) if built, this checkout's .venv/bin/unmix-desktop.
# update-desktop-database and gtk-update-icon-cache run only if they are installed.
set -eu

ACTION=${1:-install}
ROOT=$(CDPATH= cd -- "$(dirname -- "$0")/.." && pwd)
NAME=unmix-desktop
DATA_HOME=${XDG_DATA_HOME:-}
if [ -z "$DATA_HOME" ]; then
  DATA_HOME="$HOME/.local/share"
fi
APPS_DIR="$DATA_HOME/applications"
ICONS_DIR="$DATA_HOME/icons/hicolor"
SRC_ICONS="$ROOT/resources/icons/hicolor"
TEMPLATE="$ROOT/resources/$NAME.desktop"

refresh_caches() {
  if command -v update-desktop-database >/dev/null 2>&1 && [ -d "$APPS_DIR" ]; then
    update-desktop-database -q "$APPS_DIR" || true
  fi
  if command -v gtk-update-icon-cache >/dev/null 2>&1 && [ -d "$ICONS_DIR" ]; then
    gtk-update-icon-cache -q -f -t "$ICONS_DIR" || true
  fi
}

# The Exec key's quoting rules (Desktop Entry spec, "The Exec key"): an argument with a reserved
# character is put in double quotes, with " ` $ \ escaped by a backslash; a literal % is %%; then
# the string-value escaping doubles every backslash.
exec_quote() {
  printf '%s' "$1" | awk '
    { s = (NR > 1 ? s "\n" : "") $0 }
    END {
      bs = "\\"; n = length(s); quoted = 0; out = ""
      for (i = 1; i <= n; i++) if (substr(s, i, 1) !~ /[A-Za-z0-9\/._+%-]/) quoted = 1
      for (i = 1; i <= n; i++) {
        c = substr(s, i, 1)
        if (c == "%") c = "%%"
        else if (c == bs) c = bs bs bs bs
        else if (quoted && (c == "\"" || c == "`" || c == "$")) c = bs bs c
        out = out c
      }
      if (quoted) out = "\"" out "\""
      printf "%s", out
    }'
}

string_escape() {
  printf '%s' "$1" | awk '
    { s = (NR > 1 ? s "\n" : "") $0 }
    END {
      bs = "\\"; out = ""
      for (i = 1; i <= length(s); i++) { c = substr(s, i, 1); out = out (c == bs ? bs bs : c) }
      printf "%s", out
    }'
}

install_entry() {
  if [ -n "${UNMIX_EXEC:-}" ]; then
    target=$UNMIX_EXEC
  elif [ -x "$ROOT/dist/$NAME/$NAME" ]; then
    target="$ROOT/dist/$NAME/$NAME"
  elif [ -x "$ROOT/.venv/bin/$NAME" ]; then
    target="$ROOT/.venv/bin/$NAME"
  else
    echo "install-desktop: no $NAME executable: run \`make setup\` (or \`make bundle\`) first" >&2
    exit 1
  fi
  case $target in
    /*) ;;
    *) target="$(pwd)/$target" ;;
  esac
  case $target in
    *"
"*) echo "install-desktop: $target: a newline in the path cannot go in a .desktop file" >&2; exit 1 ;;
  esac
  if [ ! -x "$target" ]; then
    echo "install-desktop: $target: not an executable file" >&2
    exit 1
  fi

  mkdir -p "$APPS_DIR"
  for dir in "$SRC_ICONS"/*x*; do
    size=$(basename "$dir")
    mkdir -p "$ICONS_DIR/$size/apps"
    cp "$dir/apps/$NAME.png" "$ICONS_DIR/$size/apps/$NAME.png"
  done
  mkdir -p "$ICONS_DIR/scalable/apps"
  cp "$ROOT/resources/icons/$NAME.svg" "$ICONS_DIR/scalable/apps/$NAME.svg"

  EXEC_LINE="Exec=$(exec_quote "$target") %f" TRYEXEC_LINE="TryExec=$(string_escape "$target")" \
    awk '/^Exec=/ { print ENVIRON["EXEC_LINE"]; next }
         /^TryExec=/ { print ENVIRON["TRYEXEC_LINE"]; next }
         { print }' "$TEMPLATE" > "$APPS_DIR/.$NAME.desktop.tmp"
  chmod 644 "$APPS_DIR/.$NAME.desktop.tmp"
  mv -f "$APPS_DIR/.$NAME.desktop.tmp" "$APPS_DIR/$NAME.desktop"
  refresh_caches
  echo "Installed $APPS_DIR/$NAME.desktop (Exec: $target) and icons under $ICONS_DIR"
}

uninstall_entry() {
  rm -f "$APPS_DIR/$NAME.desktop"
  for dir in "$SRC_ICONS"/*x*; do
    rm -f "$ICONS_DIR/$(basename "$dir")/apps/$NAME.png"
  done
  rm -f "$ICONS_DIR/scalable/apps/$NAME.svg"
  refresh_caches
  echo "Removed $NAME's menu entry and icons from $DATA_HOME"
}

case $ACTION in
  install) install_entry ;;
  uninstall) uninstall_entry ;;
  *) echo "usage: $0 install|uninstall" >&2; exit 2 ;;
esac
