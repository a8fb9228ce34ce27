#include <catch2/catch.hpp>

#include "hub/broadcast.hpp"

using sovdev::hub::BroadcastStream;
using sovdev::hub::BroadcastStreams;

TEST_CASE("a broadcast stream keeps what it sent while asked about, and starts afresh when idle") {
  BroadcastStreams streams(64, 30);
  BroadcastStream& first = streams.get("p/blob/aa", 8, 1000);
  const uint64_t id = first.id;
  REQUIRE(id != 0);
  first.sent_seq[3] = ++first.last_seq;  // chunk 3 went out as number 1
  CHECK(first.sent(3));
  CHECK(first.on_its_way(3, id, 0));  // an agent that has seen nothing yet will get it
  CHECK_FALSE(first.on_its_way(3, id, 1));

  // Asked about again within the idle time: the same stream, chunk 3 still sent.
  BroadcastStream& again = streams.get("p/blob/aa", 8, 1029);
  CHECK(again.id == id);
  CHECK(again.sent(3));
  CHECK(again.last_seq == 1);

  // 30 s after the last question: a new stream that has sent nothing, and an old position is
  // no position.
  BroadcastStream& fresh = streams.get("p/blob/aa", 8, 1059);
  CHECK(fresh.id != id);
  CHECK(fresh.id != 0);
  CHECK(fresh.last_seq == 0);
  CHECK_FALSE(fresh.sent(3));
  CHECK_FALSE(fresh.on_its_way(3, id, 0));
  CHECK(streams.size() == 1);
}

TEST_CASE("broadcast streams past their limit forget the least recently asked about") {
  BroadcastStreams streams(2, 30);
  const uint64_t a = streams.get("p/blob/a", 4, 10).id;
  streams.get("p/blob/b", 4, 11);
  streams.get("p/blob/a", 4, 12);  // a is now the most recent
  streams.get("p/blob/c", 4, 13);  // b goes
  CHECK(streams.size() == 2);
  CHECK(streams.get("p/blob/a", 4, 14).id == a);
}
