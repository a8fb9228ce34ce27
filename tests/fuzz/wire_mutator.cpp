#include "tests/fuzz/wire_mutator.hpp"

#include <optional>
#include <random>
#include <vector>

namespace sovdev::fuzz {
namespace {

// A length-delimited field that holds a nested message: where its length varint sits.
struct Enclosing {
  size_t length_at;
  size_t length_bytes;
  uint64_t length;
};

struct Site {
  size_t at;     // the varint value's first byte
  size_t bytes;  // its encoded size
  uint64_t value;
  std::vector<Enclosing> enclosing;  // outermost first
};

std::optional<uint64_t> read_varint(const std::string& s, size_t& pos, size_t end) {
  uint64_t v = 0;
  for (unsigned shift = 0; shift < 64 && pos < end; shift += 7) {
    const auto b = static_cast<uint8_t>(s[pos++]);
    v |= static_cast<uint64_t>(b & 0x7f) << shift;
    if (!(b & 0x80)) return v;
  }
  return std::nullopt;
}

std::string varint(uint64_t v) {
  std::string out;
  while (v >= 0x80) {
    out.push_back(static_cast<char>((v & 0x7f) | 0x80));
    v >>= 7;
  }
  out.push_back(static_cast<char>(v));
  return out;
}

// Collects the varint fields of the message in [pos, end); false if it is not a message.
bool scan(const std::string& s, size_t pos, size_t end, int depth,
          std::vector<Enclosing>& enclosing, std::vector<Site>& sites) {
  while (pos < end) {
    const auto tag = read_varint(s, pos, end);
    if (!tag || (*tag >> 3) == 0) return false;
    switch (*tag & 7) {
      case 0: {
        const size_t at = pos;
        const auto v = read_varint(s, pos, end);
        if (!v) return false;
        sites.push_back({at, pos - at, *v, enclosing});
        break;
      }
      case 1: pos += 8; break;
      case 5: pos += 4; break;
      case 2: {
        const size_t length_at = pos;
        const auto len = read_varint(s, pos, end);
        if (!len || *len > end - pos) return false;
        if (depth < 6 && *len > 0) {
          // Bytes that happen to parse as a message are treated as one: harmless either way.
          std::vector<Site> inner;
          enclosing.push_back({length_at, pos - length_at, *len});
          if (scan(s, pos, pos + *len, depth + 1, enclosing, inner)) {
            sites.insert(sites.end(), inner.begin(), inner.end());
          }
          enclosing.pop_back();
        }
        pos += *len;
        break;
      }
      default: return false;
    }
    if (pos > end) return false;
  }
  return true;
}

uint64_t boundary(uint64_t old, std::mt19937& rng) {
  // clang-format off
  static constexpr uint64_t kValues[] = {
      0, 1, 2, 0x7f, 0x80, 0xff, 0xffff, 0x10000, 0x7fffffff, 0x80000000u, 0xffffffffu,
      0x100000000ull, 1ull << 53, 1ull << 62, 0x7fffffffffffffffull, 0x8000000000000000ull, ~0ull};
  // clang-format on
  switch (rng() % 4) {
    case 0: return old + 1;
    case 1: return old - 1;
    case 2: return ~0ull - (rng() % 4096);  // just below 2^64, or small negative int64
    default: return kValues[rng() % std::size(kValues)];
  }
}

}  // namespace

bool mutate_varint(std::string& bytes, size_t skip, unsigned seed) {
  if (skip > bytes.size()) return false;
  std::vector<Site> sites;
  std::vector<Enclosing> enclosing;
  if (!scan(bytes, skip, bytes.size(), 0, enclosing, sites) || sites.empty()) return false;
  std::mt19937 rng(seed);
  const Site& site = sites[rng() % sites.size()];
  const std::string value = varint(boundary(site.value, rng));
  // Bytes added (or removed) inside each enclosing message, which its length must follow.
  auto delta = static_cast<int64_t>(value.size()) - static_cast<int64_t>(site.bytes);
  bytes.replace(site.at, site.bytes, value);
  // Innermost first: an outer length field sits before an inner one, so edits never move it.
  for (auto it = site.enclosing.rbegin(); it != site.enclosing.rend(); ++it) {
    const std::string length = varint(it->length + static_cast<uint64_t>(delta));
    bytes.replace(it->length_at, it->length_bytes, length);
    delta += static_cast<int64_t>(length.size()) - static_cast<int64_t>(it->length_bytes);
  }
  return true;
}

}  // namespace sovdev::fuzz
