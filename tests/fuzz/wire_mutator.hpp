// A mutator that knows the protobuf wire format: byte-level mutation rarely turns a varint
// into 2^64-1 or INT64_MIN, the values where size and time arithmetic overflows. Harnesses whose
// input is (a prefix plus) a protobuf message define
//   extern "C" size_t LLVMFuzzerCustomMutator(uint8_t* d, size_t n, size_t max, unsigned seed) {
//     return sovdev::fuzz::mutate_message(d, n, max, seed, /*skip=*/1);
//   }
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <string>

extern "C" size_t LLVMFuzzerMutate(uint8_t* data, size_t size, size_t max_size);

namespace sovdev::fuzz {

// Replaces the value of one varint field of the message in `bytes` from offset `skip` on
// (nested messages included, their lengths fixed up) by a boundary value. False when the bytes
// hold no varint field or do not parse as a message.
bool mutate_varint(std::string& bytes, size_t skip, unsigned seed);

// One time in three a boundary varint, otherwise libFuzzer's own mutations.
inline size_t mutate_message(uint8_t* data, size_t size, size_t max_size, unsigned seed,
                             size_t skip) {
  if (seed % 3 == 0) {
    std::string bytes(reinterpret_cast<const char*>(data), size);
    if (mutate_varint(bytes, skip, seed / 3) && bytes.size() <= max_size) {
      std::copy(bytes.begin(), bytes.end(), data);
      return bytes.size();
    }
  }
  return LLVMFuzzerMutate(data, size, max_size);
}

}  // namespace sovdev::fuzz
