#include "agent/commands.hpp"
#include "platform/proc/memory.hpp"

int main(int argc, char** argv) {
  sovdev::proc::tune_allocator();
  return sovdev::agent::main(argc, argv);
}
