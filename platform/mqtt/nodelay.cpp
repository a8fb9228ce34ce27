#include "platform/mqtt/nodelay.hpp"

#include <dirent.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <sys/stat.h>

#include <cstdlib>

namespace sovdev::mqtt {

int set_nodelay_on_tcp_sockets(int send_buffer_bytes) {
  DIR* dir = ::opendir("/proc/self/fd");
  if (dir == nullptr) return 0;
  int set = 0;
  while (const dirent* entry = ::readdir(dir)) {
    char* end = nullptr;
    const long fd = std::strtol(entry->d_name, &end, 10);
    if (end == entry->d_name || *end != '\0' || fd == ::dirfd(dir)) continue;
    const int sock = static_cast<int>(fd);
    struct stat st {};
    if (::fstat(sock, &st) != 0 || !S_ISSOCK(st.st_mode)) continue;
    int protocol = 0;
    socklen_t len = sizeof protocol;
    if (::getsockopt(sock, SOL_SOCKET, SO_PROTOCOL, &protocol, &len) != 0 ||
        protocol != IPPROTO_TCP) {
      continue;
    }
    int on = 1;
    if (::setsockopt(sock, IPPROTO_TCP, TCP_NODELAY, &on, sizeof on) == 0) set++;
    if (send_buffer_bytes > 0) {
      (void)::setsockopt(sock, SOL_SOCKET, SO_SNDBUF, &send_buffer_bytes, sizeof send_buffer_bytes);
    }
  }
  ::closedir(dir);
  return set;
}

}  // namespace sovdev::mqtt
