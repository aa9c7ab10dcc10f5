#!/bin/bash
# The shipped systemd unit passes systemd-analyze verify; the shipped nginx
# example, with only its addresses and certificate paths changed, terminates
# TLS in front of voxray, proxies the WebSocket session and answers /metrics
# only to allowed addresses.
. "$top_srcdir/tests/integration/lib.sh"

LOADTEST="$top_builddir/tools/voxray-loadtest"
UNIT="$top_builddir/conf/systemd/voxray.service"
check "make built the systemd unit with its paths filled in" bash -c "[ -s '$UNIT' ] && ! grep -q '@bindir@\|@sysconfdir@' '$UNIT'"
if command -v systemd-analyze >/dev/null; then
    # verify needs the binary it names: point the copy at the build tree.
    sed -e "s|^ExecStart=.*|ExecStart=$VOXRAY -c /etc/voxray/voxray.ini|" \
        -e "s|^ExecStartPre=.*|ExecStartPre=$VOXRAY --check-config -c /etc/voxray/voxray.ini|" \
        "$UNIT" >"$WORK/voxray.service"
    # (Documentation= names the man pages: find them in the source tree)
    mkdir -p "$WORK/man/man8" "$WORK/man/man5"
    ln -s "$top_srcdir/man/voxray.8" "$WORK/man/man8/"
    ln -s "$top_srcdir/man/voxray.ini.5" "$WORK/man/man5/"
    out=$(MANPATH="$WORK/man" systemd-analyze verify "$WORK/voxray.service" 2>&1)
    check "systemd-analyze verify accepts the unit" bash -c '! grep -q "voxray.service" <<<"$1"' _ "$out"
    [ -n "$out" ] && diag "$out"
else
    ok "# SKIP systemd-analyze is not installed"
fi
check "the unit reloads with SIGHUP" grep -q '^ExecReload=/bin/kill -HUP \$MAINPID' "$UNIT"
check "the unit runs as a non-root user" grep -q '^User=voxray' "$UNIT"
check "the unit stops after the drain timeout, not before" grep -q '^TimeoutStopSec=60' "$UNIT"

sox -n -r 16000 -c 1 -b 16 -e signed-integer "$WORK/turn.wav" synth 0.6 sine 220 vol 0.4 pad 0.2 0 2>/dev/null
base_conf "$WORK/v.ini" "
[plugin.sim]
plugin = sim
latency = 20ms
[stt]
providers = sim
[llm]
providers = sim
[tts]
providers = sim"
start_voxray "$WORK/v.ini" "$WORK/v.log" || { not_ok "voxray starts" "$(cat "$WORK/v.log")"; done_testing; }

# An upgrade is taken only as the first request of a connection: on a
# kept-alive connection that served /health it gets 421 and the connection
# closes (the client retries on a new one); as a first request, 101.
cat >"$WORK/reuse.py" <<'PY'
import socket, sys
port = int(sys.argv[1])
up = ("GET /v1/realtime HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
      "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n").encode()
def head(s):
    b = b""
    while b"\r\n\r\n" not in b:
        d = s.recv(4096)
        if not d: break
        b += d
    return b
s = socket.create_connection(("127.0.0.1", port), timeout=5)
s.sendall(b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n")
first = head(s)
s.sendall(up)
second = head(s)
rest = b""
try:
    while True:
        d = s.recv(4096)
        if not d: break
        rest += d
except socket.timeout:
    print("connection left open after 421"); sys.exit(1)
s.close()
s = socket.create_connection(("127.0.0.1", port), timeout=5)
s.sendall(up)
fresh = head(s)
s.close()
print(first.split(b"\r\n")[0].decode(), "|", second.split(b"\r\n")[0].decode(), "|", fresh.split(b"\r\n")[0].decode())
ok = (first.startswith(b"HTTP/1.1 200") and second.startswith(b"HTTP/1.1 421")
      and b"Connection: close" in second and fresh.startswith(b"HTTP/1.1 101"))
sys.exit(0 if ok else 1)
PY
out=$(python3 "$WORK/reuse.py" "$VX_PORT" 2>&1)
check "an upgrade after /health on one connection gets 421 and the connection closes; on a new one, 101" \
    [ $? -eq 0 ]
diag "$out"
check "... and voxray says why in its log" grep -q "kept-alive connection that already carried HTTP requests" "$WORK/v.log"

TLS_PORT=$(free_port)
N="$WORK/nginx"
mkdir -p "$N/tmp"
openssl req -x509 -newkey rsa:2048 -nodes -days 1 -keyout "$N/key.pem" \
    -out "$N/cert.pem" -subj /CN=127.0.0.1 -addext subjectAltName=IP:127.0.0.1 2>/dev/null
# The example with this machine's addresses: one upstream, loopback port,
# the test certificate.
sed -e "/server 10\.0\.0\.1[23]:8080/d" \
    -e "s|server 10\.0\.0\.11:8080|server 127.0.0.1:$VX_PORT|" \
    -e "s|listen 443 ssl;|listen 127.0.0.1:$TLS_PORT ssl;|" \
    -e "s|/etc/ssl/voxray/fullchain.pem|$N/cert.pem|" \
    -e "s|/etc/ssl/voxray/privkey.pem|$N/key.pem|" \
    "$top_srcdir/conf/nginx/voxray.conf" >"$N/voxray.conf"
cat >"$N/nginx.conf" <<NGINX
daemon off;
worker_processes 1;
pid $N/nginx.pid;
error_log $N/error.log info;
events { worker_connections 64; }
http {
    access_log off;
    client_body_temp_path $N/tmp/body;
    proxy_temp_path $N/tmp/proxy;
    fastcgi_temp_path $N/tmp/fastcgi;
    uwsgi_temp_path $N/tmp/uwsgi;
    scgi_temp_path $N/tmp/scgi;
    include $N/voxray.conf;
}
NGINX
check "nginx -t accepts the example" quiet /usr/sbin/nginx -t -p "$N" -c "$N/nginx.conf" -e "$N/error.log"
/usr/sbin/nginx -p "$N" -c "$N/nginx.conf" -e "$N/error.log" >"$N/out.log" 2>&1 &
NGINX_PID=$!
track "$NGINX_PID"
for _ in $(seq 1 100); do
    curl -skf "https://127.0.0.1:$TLS_PORT/health" >/dev/null && break
    sleep 0.1
done
check "/health answers through nginx over TLS" [ "$(http_code "https://127.0.0.1:$TLS_PORT/health" -k)" = 200 ]
check "/ready answers through nginx over TLS" [ "$(http_code "https://127.0.0.1:$TLS_PORT/ready" -k)" = 200 ]
# Fill nginx's pool of kept-alive upstream connections before the session:
# the session's upgrade must not be sent on one of them.
for _ in 1 2 3 4 5; do http_code "https://127.0.0.1:$TLS_PORT/health" -k >/dev/null; done
"$LOADTEST" -u "wss://127.0.0.1:$TLS_PORT/v1/realtime" -n 2 -t 2 --think 100 --insecure --json \
    "$WORK/turn.wav" >"$WORK/lt.json" 2>"$WORK/lt.err"
check "a wss:// session through nginx completes every turn" \
    quiet jq -e '.turns_ok == 4 and .errors == {}' <(tail -n 1 "$WORK/lt.json")
check "nginx keeps upstream connections alive for the HTTP routes" grep -q '^    keepalive ' "$N/voxray.conf"
check "/metrics is served to an allowed address (127.0.0.1)" \
    [ "$(http_code "https://127.0.0.1:$TLS_PORT/metrics" -k --interface 127.0.0.1)" = 200 ]
check "/metrics is refused (403) to any other address (127.0.0.2)" \
    [ "$(http_code "https://127.0.0.1:$TLS_PORT/metrics" -k --interface 127.0.0.2)" = 403 ]
check "... while the other routes answer that address" \
    [ "$(http_code "https://127.0.0.1:$TLS_PORT/health" -k --interface 127.0.0.2)" = 200 ]
kill "$NGINX_PID"; wait "$NGINX_PID" 2>/dev/null
stop_pid "$VX_PID"
done_testing
