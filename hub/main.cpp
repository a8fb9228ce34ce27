#include "hub/commands.hpp"

int main(int argc, char** argv) {
  return sovdev::hub::main(argc, argv);
}
