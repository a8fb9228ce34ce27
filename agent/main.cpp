#include "agent/commands.hpp"

int main(int argc, char** argv) {
  return sovdev::agent::main(argc, argv);
}
