# System libraries from Debian 12 (no foreign source in this tree):
#   libuv1-dev, libhttp-parser-dev, libyaml-dev, libcriterion-dev (tests
#   only).

find_path(LIBUV_INCLUDE_DIR uv.h)
find_library(LIBUV_LIBRARY NAMES uv)
if(NOT LIBUV_INCLUDE_DIR OR NOT LIBUV_LIBRARY)
  message(FATAL_ERROR "libuv not found: apt-get install libuv1-dev")
endif()
add_library(peerproxy_libuv INTERFACE)
target_include_directories(peerproxy_libuv INTERFACE ${LIBUV_INCLUDE_DIR})
target_link_libraries(peerproxy_libuv INTERFACE ${LIBUV_LIBRARY})

find_path(HTTP_PARSER_INCLUDE_DIR http_parser.h)
find_library(HTTP_PARSER_LIBRARY NAMES http_parser)
if(NOT HTTP_PARSER_INCLUDE_DIR OR NOT HTTP_PARSER_LIBRARY)
  message(FATAL_ERROR
    "http-parser not found: apt-get install libhttp-parser-dev")
endif()
add_library(peerproxy_http_parser INTERFACE)
target_include_directories(peerproxy_http_parser INTERFACE
  ${HTTP_PARSER_INCLUDE_DIR})
target_link_libraries(peerproxy_http_parser INTERFACE ${HTTP_PARSER_LIBRARY})

find_path(YAML_INCLUDE_DIR yaml.h)
find_library(YAML_LIBRARY NAMES yaml)
if(NOT YAML_INCLUDE_DIR OR NOT YAML_LIBRARY)
  message(FATAL_ERROR "libyaml not found: apt-get install libyaml-dev")
endif()
add_library(peerproxy_yaml INTERFACE)
target_include_directories(peerproxy_yaml INTERFACE ${YAML_INCLUDE_DIR})
target_link_libraries(peerproxy_yaml INTERFACE ${YAML_LIBRARY})
