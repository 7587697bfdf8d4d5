// Builds the CLI11 parser from the command table and runs the command.
#include "cli/command_line.h"

#include <CLI/CLI.hpp>
#include <cstdio>
#include <iostream>
#include <map>
#include <string>
#include <vector>

#include "base/nearest_name.h"
#include "cli/command_table.h"
#include "cli/commands.h"

namespace shim::cli {
namespace {

constexpr const char* kVersion = "shim 0.1.0 (protocol 1)";

constexpr const char* kRootFooter = R"(
Every command takes --help (or: shim help COMMAND ...). The global options
may come before or after the command. Defaults come from SHIM_HOME (else
~/.shim): the socket is $SHIM_HOME/shim.sock (or $SHIM_SOCKET), the data
$SHIM_HOME/data.

Exit codes:
  0  ok
  1  the server answered with an error (or the task failed, the key is missing)
  2  usage error: the command line is wrong (nothing was sent)
  3  no server could be reached, or it refused the auth token)";

std::vector<std::string> Words(std::string_view text) {
  std::vector<std::string> words;
  size_t start = 0;
  while (start < text.size()) {
    size_t end = text.find(' ', start);
    if (end == std::string_view::npos) end = text.size();
    if (end > start) words.emplace_back(text.substr(start, end - start));
    start = end + 1;
  }
  return words;
}

// "N" options hold integers: refused while parsing, naming the option.
CLI::Validator IntegerText() {
  return CLI::Validator(
      [](std::string& value) -> std::string {
        char* end = nullptr;
        errno = 0;
        (void)std::strtoll(value.c_str(), &end, 10);
        if (value.empty() || *end != '\0' || errno != 0)
          return "wants an integer, got '" + value + "'";
        return "";
      },
      "");
}

void AddOption(CLI::App* app, const OptionSpec& spec, std::string_view help_override) {
  const std::string flag = "--" + std::string(spec.name);
  const std::string help(help_override.empty() ? spec.help : help_override);
  CLI::Option* opt;
  if (spec.value.empty()) {
    opt = app->add_flag(flag, help);
  } else {
    opt = app->add_option(flag, help);
    opt->type_name(std::string(spec.value));
    opt->multi_option_policy(spec.repeatable ? CLI::MultiOptionPolicy::TakeAll
                                             : CLI::MultiOptionPolicy::TakeLast);
    if (spec.value == "N" || spec.value == "SEQ") opt->check(IntegerText());
  }
  if (spec.global && app->get_parent() != nullptr) opt->group("Global options");
}

void AddGlobalOptions(CLI::App* app, const CommandSpec* command) {
  for (const OptionSpec& spec : Options()) {
    if (!spec.global) continue;
    bool own = false;  // the command gives it its own meaning (task submit --timeout-ms)
    if (command) {
      for (const OptionUse& use : command->options) own = own || use.name == spec.name;
    }
    if (!own) AddOption(app, spec, {});
  }
}

// "KEY VALUE", "[PREFIX]", "COMMAND...": one positional per word.
void AddPositionals(CLI::App* app, std::string_view args) {
  for (std::string word : Words(args)) {
    const bool optional = word.front() == '[';
    if (optional) word = word.substr(1, word.size() - 2);
    const bool many = word.size() > 3 && word.ends_with("...");
    if (many) word.resize(word.size() - 3);
    CLI::Option* opt = app->add_option(word);
    opt->type_name("");
    if (many) opt->expected(1, CLI::detail::expected_max_vector_size)->allow_extra_args(true);
    if (!optional) opt->required();
  }
}

struct Parser {
  std::unique_ptr<CLI::App> root;
  std::map<const CLI::App*, const CommandSpec*> commands;
};

Parser Build() {
  Parser p;
  p.root =
      std::make_unique<CLI::App>("shim - local coordination engine for AI chat sessions", "shim");
  CLI::App& root = *p.root;
  root.get_formatter()->column_width(34);
  root.footer(kRootFooter);
  root.set_version_flag("--version", kVersion);
  root.require_subcommand(1);
  AddGlobalOptions(&root, nullptr);
  for (const CommandSpec& command : Commands()) {
    std::vector<std::string> words = Words(command.path);
    CLI::App* parent = &root;
    for (size_t i = 0; i + 1 < words.size(); ++i) parent = parent->get_subcommand(words[i]);
    CLI::App* app = parent->add_subcommand(words.back(), std::string(command.summary));
    p.commands[app] = &command;
    if (!command.help.empty()) app->footer(std::string(command.help));
    if (!command.run) app->require_subcommand(1);  // a group: state, task, ...
    AddPositionals(app, command.args);
    for (const OptionUse& use : command.options) {
      const OptionSpec* spec = FindOption(use.name);
      if (!spec) {
        std::fprintf(stderr, "shim: command table: '%s' names no option '%s'\n",
                     std::string(command.path).c_str(), std::string(use.name).c_str());
        std::abort();
      }
      AddOption(app, *spec, use.help);
    }
    if (command.client) AddGlobalOptions(app, &command);
  }
  return p;
}

// The chain of apps the command line selected: root, then each subcommand.
std::vector<CLI::App*> Chain(CLI::App& root) {
  std::vector<CLI::App*> chain = {&root};
  for (;;) {
    auto selected = chain.back()->get_subcommands();
    if (selected.empty()) return chain;
    chain.push_back(selected.front());
  }
}

std::string PathOf(const std::vector<CLI::App*>& chain) {
  std::string path = "shim";
  for (size_t i = 1; i < chain.size(); ++i) path += " " + chain[i]->get_name();
  return path;
}

std::string Nearest(const std::string& typed, const std::vector<std::string>& names) {
  auto nearest = NearestName(typed, names);
  return nearest ? "; did you mean '" + *nearest + "'?" : "";
}

// Says what was wrong, in the terms of the command line: an unknown command
// or option with the nearest known one, else CLI11's own account (which
// names the argument). Always exit code 2.
int UsageFailure(CLI::App& root, const CLI::ParseError& e) {
  const std::vector<CLI::App*> chain = Chain(root);
  const std::string path = PathOf(chain);
  std::string message = e.what();
  // CLI11 says "--count: wants an integer, ..."; the option reads as the subject.
  if (const size_t at = message.find(": wants an integer"); at != std::string::npos)
    message.erase(at, 1);
  // Words left over, when that is what went wrong (a bad option value is
  // said best by CLI11's own message, which names the option).
  const bool left_over = dynamic_cast<const CLI::ExtrasError*>(&e) ||
                         dynamic_cast<const CLI::RequiredError*>(&e) ||
                         dynamic_cast<const CLI::CallForHelp*>(&e);
  for (size_t i = 0; left_over && i < chain.size(); ++i) {
    CLI::App* app = chain[i];
    const std::vector<std::string> left = app->remaining(false);
    if (left.empty()) continue;
    const std::string& word = left.front();
    const std::string at =
        i == 0 ? "" : " of '" + PathOf({chain.begin(), chain.begin() + i + 1}) + "'";
    if (word.size() > 1 && word[0] == '-') {
      std::vector<std::string> names;
      for (const CLI::Option* opt : app->get_options()) {
        if (opt->nonpositional()) names.push_back(opt->get_name());
      }
      const std::string typed = word.substr(0, word.find('='));
      message = "unknown option '" + typed + "'" + Nearest(typed, names);
    } else if (!app->get_subcommands({}).empty() && app->get_subcommands().empty()) {
      std::vector<std::string> names;
      for (const CLI::App* sub : app->get_subcommands({})) names.push_back(sub->get_name());
      message = std::string(app == &root ? "unknown command '" : "unknown subcommand '") + word +
                "'" + at + Nearest(word, names);
    } else {
      message = "unexpected argument '" + word + "'";
    }
    break;
  }
  // No command at all (`shim`, `shim state`): the help says what there is.
  if (message == std::string(e.what()) && dynamic_cast<const CLI::RequiredError*>(&e) &&
      !chain.back()->get_subcommands({}).empty()) {
    std::cerr << chain.back()->help();
    return kExitUsage;
  }
  std::fprintf(stderr, "%s: %s\n(see %s --help)\n", path.c_str(), message.c_str(), path.c_str());
  return kExitUsage;
}

ParsedArgs Collect(const std::vector<CLI::App*>& chain) {
  ParsedArgs args;
  std::string command;
  for (size_t i = 1; i < chain.size(); ++i)
    command += (command.empty() ? "" : " ") + chain[i]->get_name();
  args.SetCommand(command);
  for (CLI::App* app : chain) {
    for (const CLI::Option* opt : app->get_options()) {
      if (opt->count() == 0) continue;
      if (!opt->nonpositional()) {
        for (const std::string& v : opt->results()) args.AddPositional(v);
        continue;
      }
      const std::string name = opt->get_name().substr(2);
      const OptionSpec* spec = FindOption(name);
      if (!spec) continue;  // --help, --version
      if (spec->value.empty()) {
        args.SetFlag(name);
      } else {
        for (const std::string& v : opt->results()) args.AddValue(name, v);
      }
    }
  }
  return args;
}

}  // namespace

std::unique_ptr<CLI::App> BuildCommandLine() { return Build().root; }

int RunCommandLine(int argc, char** argv) {
  Parser parser = Build();
  CLI::App& root = *parser.root;
  try {
    root.parse(argc, argv);
  } catch (const CLI::CallForHelp& e) {
    // `shim stat --help` is an unknown command, not a request for the
    // top-level help.
    for (CLI::App* app : Chain(root)) {
      if (!app->remaining(false).empty()) return UsageFailure(root, e);
    }
    return root.exit(e);
  } catch (const CLI::CallForVersion& e) {
    return root.exit(e);
  } catch (const CLI::ParseError& e) {
    return UsageFailure(root, e);
  }
  const std::vector<CLI::App*> chain = Chain(root);
  const CommandSpec* command = parser.commands.at(chain.back());
  // Global options before a command that takes none (`shim --json serve`).
  if (!command->client) {
    for (const CLI::Option* opt : root.get_options()) {
      if (opt->nonpositional() && opt->count() > 0 &&
          chain.back()->get_option_no_throw(opt->get_name()) == nullptr) {
        const std::string path = PathOf(chain);
        std::fprintf(stderr, "%s: %s does not apply to %s\n(see %s --help)\n", path.c_str(),
                     opt->get_name().c_str(), path.c_str(), path.c_str());
        return kExitUsage;
      }
    }
  }
  return command->run(Collect(chain));
}

int RunHelp(const ParsedArgs& args) {
  std::vector<std::string> words = {"shim"};
  for (const std::string& w : args.positional()) words.push_back(w);
  words.push_back("--help");
  std::vector<char*> argv;
  for (std::string& w : words) argv.push_back(w.data());
  return RunCommandLine(static_cast<int>(argv.size()), argv.data());
}

int RunVersion(const ParsedArgs&) {
  std::puts(kVersion);
  return kExitOk;
}

}  // namespace shim::cli
