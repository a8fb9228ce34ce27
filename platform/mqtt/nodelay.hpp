// Paho C 1.3 never sets TCP_NODELAY on its broker socket and offers no hook to do so. The sync
// protocol is request/response: with Nagle's algorithm on, the tail of each 64 KiB chunk (and
// each small request behind an unacknowledged ack) waits for the peer's delayed ACK, ~40 ms on
// Linux, which made a loopback pull 40× slower than the broker allowed.
#pragma once

namespace sovdev::mqtt {

// Sets TCP_NODELAY on every connected TCP socket of this process (the MQTT connection; any
// other TCP socket here, such as libcurl's, already has it), and with `send_buffer_bytes` > 0
// also SO_SNDBUF (the kernel caps it at net.core.wmem_max and doubles it). Returns how many
// sockets it set.
int set_nodelay_on_tcp_sockets(int send_buffer_bytes = 0);

}  // namespace sovdev::mqtt
