// Strings an agent reports (its id, state, messages, service names) reach a terminal, a JSON
// consumer and Prometheus: none of them may carry a control sequence. An agent that sends
// ESC]0;title BEL or ESC[2J would otherwise retitle or clear the operator's terminal.
#pragma once

#include <string>
#include <string_view>

namespace sovdev::hub {

// `text` with every control character shown rather than sent: C0 and DEL as \xNN, C1
// (U+0080..U+009F, an 8-bit CSI among them) and the bidirectional overrides and isolates
// (U+202A..U+202E, U+2066..U+2069: text that reads differently than it is) as \u{NNNN}, a
// backslash as \\ (so an escape can never be forged), and each byte of invalid UTF-8 as \xNN.
// Everything else, valid non-ASCII text included, is kept.
std::string visible_text(std::string_view text);

}  // namespace sovdev::hub
