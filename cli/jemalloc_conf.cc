// jemalloc options built into `shim` (linked only when jemalloc is; see
// cli/CMakeLists.txt). jemalloc reads this at its first allocation; the
// MALLOC_CONF environment variable still overrides it per option.
//
// Freed pages go back to the system after 1 s instead of jemalloc's 10 s
// default (dirty_decay_ms), and without a second "muzzy" stage: a
// coordination server on a laptop should shrink soon after a burst. Measured
// with bench/compare/run.sh --with-recovery (RSS 2 s after submitting 1M
// tasks): 190 MB against 195-200 MB with the defaults.
extern "C" {
extern const char* malloc_conf;
const char* malloc_conf = "dirty_decay_ms:1000,muzzy_decay_ms:0";
}
