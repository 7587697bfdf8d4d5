// shim: entry point. The commands are rows of cli/command_table.cc.
#include "cli/command_line.h"

int main(int argc, char** argv) { return shim::cli::RunCommandLine(argc, argv); }
