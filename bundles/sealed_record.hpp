// A Secret's values sealed inside its bundle record (docs/design-secrets.md):
//  - the hub's build puts the values of one Secret into one JSON object {key: base64 value},
//    seals it under the channel's epoch key into ResourceRecord.sealed, and leaves the record's
//    JSON with the same data keys and empty values (diffs and inventories still see the keys);
//  - the agent opens it in memory just before the apply and splices the values back into that
//    one object's JSON.
// The associated data binds a sealed object to its place: stack, version, channel, epoch and
// the object's identity. Moved to another object, version, stack or epoch, it does not open.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <string_view>

#include "bundles/seal.hpp"
#include "common/error.hpp"
#include "sovdev.pb.h"

namespace sovdev::sealed {

// A Kubernetes Secret holds at most 1 MiB; its sealed JSON (base64 and key names) is at most
// about 4/3 of that.
inline constexpr size_t kMaxSealedData = 2 * 1024 * 1024;

struct Place {
  std::string stack;
  uint64_t version = 0;
  std::string channel;
  uint64_t epoch = 0;
};
Place place_of(const pb::BundleManifest& manifest);  // stack, version, secrets_channel/epoch

std::string associated_data(const Place& place, const pb::ResourceRecord& record);

// The JSON object {"key": "<base64 of value>", ...}, keys in map order. Keys must already be
// valid Secret data keys ([-._a-zA-Z0-9]): nothing in them is escaped.
seal::SecretBytes data_object(const std::map<std::string, seal::SecretBytes>& values);

// Sets record.sealed from `data` (a data_object) under `key`.
void seal_record(pb::ResourceRecord& record, const seal::SecretBytes& data,
                 const seal::SecretBytes& key, const Place& place);

// The data_object of a sealed record. Errc::signature when it does not open (another key,
// another place, changed bytes), Errc::invalid when the record has nothing sealed.
[[nodiscard]] Expected<seal::SecretBytes> open_record(const pb::ResourceRecord& record,
                                                      const seal::SecretBytes& key,
                                                      const Place& place);

// `json` (the record's object) with its `data` filled from `opened` (an open_record result).
// The sealed keys must be exactly the data keys the JSON names, every one of them empty, and
// every sealed value a base64 string: anything else is Errc::invalid, naming keys but never a
// value. The result holds the plaintext: hand it to the target, then wipe() it.
[[nodiscard]] Expected<std::string> splice(std::string_view json, const seal::SecretBytes& opened);

// Zeroes a string's bytes in place (before it is freed or reused).
void wipe(std::string& text);

}  // namespace sovdev::sealed
