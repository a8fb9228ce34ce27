// Translation between our types and Paho's, kept apart from the connection state machine.
#pragma once

#include <mqtt/connect_options.h>
#include <mqtt/message.h>

#include <string>

#include "platform/mqtt/client.hpp"

namespace sovdev::mqtt {

// Refuses options that cannot work, before any network traffic, with what to fix.
Status validate(const Options& options);

bool uses_tls(const std::string& server);

// MQTT v5 connect options, built on a plain connect_options, without the v5 properties: see
// paho_connect_properties.
::mqtt::connect_options paho_connect_options(const Options& options);

// The CONNECT properties. In 1.2.0 every copy or move of a connect_options keeps pointing at
// the properties of the object it came from (paho.mqtt.cpp #362, #444; checked here), so call
// set_properties on a connect_options after its last copy or move, and keep it alive while
// async_client::connect runs: its by-value copy points back at that one.
::mqtt::properties paho_connect_properties(const Options& options);

// Only while a Paho client exists: Paho C 1.3's allocation tracker starts with the first
// client, and message properties built before that leak about 0.5 KB each (paho.mqtt.c
// #914, #1378). PahoClient is the only caller, so this holds in the programs.
::mqtt::message_ptr to_paho(const Message& message);
Message from_paho(const ::mqtt::message& message);

// A failed connection attempt, as its user can act on it. `rc` is Paho's return code and
// `reason` the MQTT v5 reason code of the CONNACK (0 when there was none).
Error connect_error(const Options& options, int rc, int reason);

}  // namespace sovdev::mqtt
