// Keeps only some top-level members of a JSON object as it streams past, so a 1 MiB ConfigMap
// the API server echoes back is never held when only its metadata is wanted.
#pragma once

#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <utility>

namespace sovdev::kube {

class JsonSkimmer {
 public:
  explicit JsonSkimmer(std::set<std::string> keep) : keep_(std::move(keep)) {}

  void feed(std::string_view data);
  // '{' + the kept members + '}' once the object has ended; "" when the text was not one
  // complete JSON object.
  std::string result() const;

 private:
  enum class State { start, key_or_end, key, colon, value, after_value, done, bad };
  void value_char(char c);

  std::set<std::string> keep_;
  State state_ = State::start;
  std::string out_ = "{";
  bool any_ = false;
  std::string key_;
  bool keeping_ = false;
  bool in_string_ = false, escape_ = false;
  int depth_ = 0;
};

// Where the value of the top-level member `key` of a JSON object lies in `text`: [first, last).
// nullopt when the text is not an object or has no such member.
std::optional<std::pair<size_t, size_t>> find_member(std::string_view text, std::string_view key);

}  // namespace sovdev::kube
