# A lab for the CNI scripts (sourced): namespaces pmi-lab-<pid>-host and pmi-lab-<pid>-world
# (the prefix src/lab sweeps when <pid> is dead), wired like src/lab's Lab: the host's eth0
# 198.18.0.2/24 with its default route via the world's 198.18.0.1, and the host's own ephemeral
# ports (61000-65000) above the plugin's pool. The root namespace is never touched.
# stage_prepare NAME PACKAGE…: install the Debian packages a stage needs (apt-get, when missing)
# and check that the plugin is built; on failure say why and "0 passed, 1 failed", return 1.
stage_prepare() {
  local stage=$1 missing=() p
  shift
  export DEBIAN_FRONTEND=noninteractive
  for p in "$@"; do dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p"); done
  if [ "${#missing[@]}" -gt 0 ]; then
    echo "$stage: installing ${missing[*]}"
    if ! { apt-get update -qq && apt-get install -y -qq "${missing[@]}" >/dev/null; }; then
      echo "$stage: cannot install ${missing[*]}"
      echo "0 passed, 1 failed"
      return 1
    fi
  fi
  if [ ! -f dist/app/main.js ]; then
    echo "$stage: dist/app/main.js is missing: run npm run build"
    echo "0 passed, 1 failed"
    return 1
  fi
}

LAB_HOST=pmi-lab-$$-host
LAB_WORLD=pmi-lab-$$-world
LAB_HOST_IP=198.18.0.2

lab_up() {
  ip netns add "$LAB_HOST" && ip netns add "$LAB_WORLD" &&
    ip -n "$LAB_HOST" link add eth0 type veth peer name eth0 netns "$LAB_WORLD" &&
    ip -n "$LAB_WORLD" addr add 198.18.0.1/24 dev eth0 && ip -n "$LAB_WORLD" link set eth0 up && ip -n "$LAB_WORLD" link set lo up &&
    ip -n "$LAB_HOST" addr add "$LAB_HOST_IP/24" dev eth0 && ip -n "$LAB_HOST" link set eth0 up && ip -n "$LAB_HOST" link set lo up &&
    ip -n "$LAB_HOST" route add default via 198.18.0.1 &&
    ip netns exec "$LAB_HOST" sysctl -qw net.ipv4.ip_local_port_range="61000 65000"
}

# Remove the lab and every other namespace of this shell's prefix (runtime namespaces too).
lab_down() {
  local ns
  for ns in $(ip netns list | awk '{print $1}' | grep "^pmi-lab-$$-"); do ip netns del "$ns" 2>/dev/null; done
}

# The plugin under the runtime's name in a CNI bin dir: `node dist/app/main.js`.
install_plugin() {
  printf '#!/bin/sh\nexec %q %q "$@"\n' "$(command -v node)" "$REPO/dist/app/main.js" >"$1/portmap-isolator"
  chmod 755 "$1/portmap-isolator"
}
