#include "platform/kube/skim.hpp"

#include <cstring>

namespace sovdev::kube {
namespace {

bool space(char c) {
  return c == ' ' || c == '\t' || c == '\n' || c == '\r';
}

}  // namespace

void JsonSkimmer::value_char(char c) {
  if (in_string_) {
    if (escape_) {
      escape_ = false;
    } else if (c == '\\') {
      escape_ = true;
    } else if (c == '"') {
      in_string_ = false;
    }
  } else if (c == '"') {
    in_string_ = true;
  } else if (c == '{' || c == '[') {
    depth_++;
  } else if ((c == '}' || c == ']') && depth_ > 0) {
    depth_--;
  } else if (depth_ == 0 && (c == ',' || c == '}')) {
    // The member's value has ended; the separator belongs to the object.
    state_ = c == ',' ? State::key_or_end : State::done;
    if (c == '}') out_ += '}';
    return;
  }
  if (keeping_) out_ += c;
}

void JsonSkimmer::feed(std::string_view data) {
  for (const char c : data) {
    switch (state_) {
      case State::start:
        if (c == '{')
          state_ = State::key_or_end;
        else if (!space(c))
          state_ = State::bad;
        break;
      case State::key_or_end:
        if (c == '"') {
          state_ = State::key;
          key_.clear();
          escape_ = false;
        } else if (c == '}') {
          out_ += '}';
          state_ = State::done;
        } else if (!space(c) && c != ',') {
          state_ = State::bad;
        }
        break;
      case State::key:
        // Keys are compared as written: the API server does not escape plain ASCII names.
        if (escape_) {
          escape_ = false;
          key_ += c;
        } else if (c == '\\') {
          escape_ = true;
          key_ += c;
        } else if (c == '"') {
          state_ = State::colon;
        } else {
          key_ += c;
        }
        break;
      case State::colon:
        if (c == ':') {
          state_ = State::value;
          keeping_ = keep_.count(key_) > 0;
          in_string_ = escape_ = false;
          depth_ = 0;
          if (keeping_) {
            if (any_) out_ += ',';
            out_ += '"' + key_ + "\":";
            any_ = true;
          }
        } else if (!space(c)) {
          state_ = State::bad;
        }
        break;
      case State::value: value_char(c); break;
      case State::after_value:
      case State::done:
        if (!space(c)) state_ = State::bad;
        break;
      case State::bad: return;
    }
  }
}

std::optional<std::pair<size_t, size_t>> find_member(std::string_view text, std::string_view key) {
  size_t i = 0;
  auto skip_space = [&] {
    while (i < text.size() && space(text[i])) i++;
  };
  // The end of the string starting at text[i] == '"' (the index after its closing quote).
  // Values can be megabytes (a ConfigMap's data), so quotes are found with memchr: a quote
  // closes the string when an even number of backslashes precedes it.
  auto skip_string = [&]() -> bool {
    const size_t start = i + 1;
    for (size_t from = start; from < text.size();) {
      const auto* quote =
          static_cast<const char*>(std::memchr(text.data() + from, '"', text.size() - from));
      if (quote == nullptr) break;
      const auto at = static_cast<size_t>(quote - text.data());
      size_t backslashes = 0;
      while (at - backslashes > start && text[at - backslashes - 1] == '\\') backslashes++;
      if (backslashes % 2 == 0) {
        i = at + 1;
        return true;
      }
      from = at + 1;
    }
    i = text.size();
    return false;
  };
  skip_space();
  if (i >= text.size() || text[i] != '{') return std::nullopt;
  i++;
  for (;;) {
    skip_space();
    if (i >= text.size() || text[i] != '"') return std::nullopt;
    const size_t name_start = i + 1;
    if (!skip_string()) return std::nullopt;
    const std::string_view name = text.substr(name_start, i - 1 - name_start);
    skip_space();
    if (i >= text.size() || text[i] != ':') return std::nullopt;
    i++;
    skip_space();
    const size_t first = i;
    int depth = 0;
    for (; i < text.size(); i++) {
      const char c = text[i];
      if (c == '"') {
        if (!skip_string()) return std::nullopt;
        i--;
      } else if (c == '{' || c == '[') {
        depth++;
      } else if ((c == '}' || c == ']') && depth > 0) {
        depth--;
      } else if (depth == 0 && (c == ',' || c == '}')) {
        break;
      }
    }
    if (i >= text.size()) return std::nullopt;
    size_t last = i;
    while (last > first && space(text[last - 1])) last--;
    if (name == key) return std::make_pair(first, last);
    if (text[i] == '}') return std::nullopt;
    i++;
  }
}

std::string JsonSkimmer::result() const {
  return state_ == State::done ? out_ : std::string();
}

}  // namespace sovdev::kube
