#include "common/error.hpp"

namespace sovdev {

const char* errc_name(Errc code) {
  switch (code) {
    case Errc::internal: return "internal";
    case Errc::usage: return "usage";
    case Errc::io: return "io";
    case Errc::invalid: return "invalid";
    case Errc::signature: return "signature";
    case Errc::rollback: return "rollback";
    case Errc::conflict: return "conflict";
    case Errc::expired: return "expired";
    case Errc::wrong_target: return "wrong_target";
    case Errc::too_large: return "too_large";
    case Errc::store: return "store";
    case Errc::not_found: return "not_found";
    case Errc::unavailable: return "unavailable";
    case Errc::denied: return "denied";
    case Errc::unhealthy: return "unhealthy";
  }
  return "unknown";
}

}  // namespace sovdev
