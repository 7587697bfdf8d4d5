// The one way shim includes Boost.Asio.
//
// Boost 1.74's asio/awaitable.hpp uses std::exchange without including
// <utility>; with GCC 12 that fails unless <utility> comes first. Every file
// that needs Asio includes this header instead of Asio directly.
#pragma once

#include <boost/asio.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <utility>

namespace shim {
namespace asio = boost::asio;
}  // namespace shim
