// The main of a fuzz target in a build without libFuzzer (GCC: the normal
// and the ASan+UBSan builds of `make test`): runs the target's
// LLVMFuzzerTestOneInput once over every input named on the command line,
// a file or every regular file of a directory, in name order (the engine
// targets keep state across inputs, so the order is fixed), as libFuzzer
// does when it is given files instead of a corpus to grow. This is how the
// seed corpus replays in `make test`: ctest fuzz_replay.<target>
// (tests/fuzz/CMakeLists.txt). A crash or a failed check aborts; an empty
// corpus is an error, so a misnamed corpus directory cannot pass unseen.
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>
#include <system_error>
#include <vector>

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size);
// Optional in a target, as with libFuzzer.
extern "C" __attribute__((weak)) int LLVMFuzzerInitialize(int* argc, char*** argv);

namespace {

namespace fs = std::filesystem;

// The files `arg` names: itself, or a directory's regular files in name order.
bool CollectInputs(const std::string& arg, std::vector<fs::path>* inputs) {
  std::error_code ec;
  if (fs::is_regular_file(arg, ec)) {
    inputs->push_back(arg);
    return true;
  }
  if (!fs::is_directory(arg, ec)) {
    std::fprintf(stderr, "fuzz replay: %s is neither a file nor a directory\n", arg.c_str());
    return false;
  }
  std::vector<fs::path> found;
  for (const fs::directory_entry& e : fs::directory_iterator(arg, ec)) {
    if (e.is_regular_file(ec)) found.push_back(e.path());
  }
  if (ec) {
    std::fprintf(stderr, "fuzz replay: cannot list %s: %s\n", arg.c_str(), ec.message().c_str());
    return false;
  }
  std::sort(found.begin(), found.end());
  inputs->insert(inputs->end(), found.begin(), found.end());
  return true;
}

}  // namespace

int main(int argc, char** argv) {
  if (LLVMFuzzerInitialize) LLVMFuzzerInitialize(&argc, &argv);
  std::vector<fs::path> inputs;
  for (int i = 1; i < argc; ++i) {
    if (!CollectInputs(argv[i], &inputs)) return 2;
  }
  if (inputs.empty()) {
    std::fprintf(stderr, "fuzz replay: no input (usage: %s FILE_OR_DIR...)\n", argv[0]);
    return 2;
  }
  size_t bytes = 0;
  for (const fs::path& path : inputs) {
    std::ifstream in(path, std::ios::binary);
    const std::vector<char> data((std::istreambuf_iterator<char>(in)),
                                 std::istreambuf_iterator<char>());
    if (in.bad()) {
      std::fprintf(stderr, "fuzz replay: cannot read %s\n", path.c_str());
      return 2;
    }
    std::fprintf(stderr, "fuzz replay: %s\n",
                 path.c_str());  // the last line names a crashing input
    LLVMFuzzerTestOneInput(reinterpret_cast<const uint8_t*>(data.data()), data.size());
    bytes += data.size();
  }
  std::printf("fuzz replay: %zu inputs (%zu bytes), no crash, no failed check\n", inputs.size(),
              bytes);
  return 0;
}
