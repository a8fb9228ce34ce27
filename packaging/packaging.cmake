# Debian packages sovdev-agent and sovdev-hub, built by CPack from this build tree:
#   cpack --config <build>/CPackConfig.cmake -B <out>     (scripts/test-packages.sh does it)
# Native builds compute Depends with dpkg-shlibdeps; cross builds (cross/) too, from the
# ":arm64" libraries dpkg knows. The rules below install only into the two packages' components
# (EXCLUDE_FROM_ALL): a plain `cmake --install` is unaffected.
set(SOVDEV_PKG_DIR ${CMAKE_CURRENT_LIST_DIR})
set(SOVDEV_PKG_GEN ${CMAKE_CURRENT_BINARY_DIR}/packaging)

# Debian architecture names.
if(CMAKE_SYSTEM_PROCESSOR MATCHES "^(aarch64|arm64)$")
  set(SOVDEV_DEB_ARCH arm64)
elseif(CMAKE_SYSTEM_PROCESSOR MATCHES "^(x86_64|AMD64|amd64)$")
  set(SOVDEV_DEB_ARCH amd64)
else()
  set(SOVDEV_DEB_ARCH ${CMAKE_SYSTEM_PROCESSOR})
endif()

# Paths are relative to the package root ("/"), so /lib/systemd/system and /etc sit beside /usr.
foreach(component agent hub)
  set(pkg sovdev-${component})
  install(TARGETS ${pkg} RUNTIME DESTINATION usr/bin COMPONENT ${component} EXCLUDE_FROM_ALL)
  install(FILES ${PROJECT_SOURCE_DIR}/systemd/${pkg}.service DESTINATION lib/systemd/system
          COMPONENT ${component} EXCLUDE_FROM_ALL)
  # Debian wants a copyright file and a compressed changelog in every package.
  configure_file(${SOVDEV_PKG_DIR}/changelog.in ${SOVDEV_PKG_GEN}/${pkg}/changelog.Debian @ONLY)
  execute_process(COMMAND gzip -9nc ${SOVDEV_PKG_GEN}/${pkg}/changelog.Debian
                  OUTPUT_FILE ${SOVDEV_PKG_GEN}/${pkg}/changelog.Debian.gz)
  install(FILES ${SOVDEV_PKG_DIR}/copyright ${SOVDEV_PKG_GEN}/${pkg}/changelog.Debian.gz
          ${SOVDEV_PKG_DIR}/${component}/README
          DESTINATION usr/share/doc/${pkg} COMPONENT ${component} EXCLUDE_FROM_ALL)
  install(FILES ${SOVDEV_PKG_DIR}/${component}/lintian-overrides DESTINATION usr/share/lintian/overrides
          RENAME ${pkg} COMPONENT ${component} EXCLUDE_FROM_ALL)
  # Maintainer scripts and conffiles, with the permissions dpkg expects.
  set(SOVDEV_${component}_CONTROL)
  foreach(script conffiles postinst prerm postrm)
    list(APPEND SOVDEV_${component}_CONTROL ${SOVDEV_PKG_DIR}/${component}/${script})
  endforeach()
endforeach()
# The agent's image registry (`sovdev-agent images serve`), a unit of its own (#22).
install(FILES ${PROJECT_SOURCE_DIR}/systemd/sovdev-agent-images.service
        DESTINATION lib/systemd/system COMPONENT agent EXCLUDE_FROM_ALL)
install(FILES ${PROJECT_SOURCE_DIR}/config/agent.example.toml DESTINATION etc/sovdev
        RENAME agent.toml COMPONENT agent EXCLUDE_FROM_ALL)
install(FILES ${PROJECT_SOURCE_DIR}/systemd/hub.env DESTINATION etc/sovdev
        COMPONENT hub EXCLUDE_FROM_ALL)

set(CPACK_GENERATOR DEB)
set(CPACK_PACKAGE_NAME sovdev)
set(CPACK_PACKAGE_VERSION ${PROJECT_VERSION})
set(CPACK_PACKAGE_VENDOR "SovDev")
if(NOT CPACK_PACKAGE_CONTACT)
  set(CPACK_PACKAGE_CONTACT "SovDev Edge Sync maintainers <sovdev-edge-sync@sovdev.dev>")
endif()
set(CPACK_PACKAGING_INSTALL_PREFIX "/")
set(CPACK_STRIP_FILES ON)
set(CPACK_INSTALL_DEFAULT_DIRECTORY_PERMISSIONS
    OWNER_READ OWNER_WRITE OWNER_EXECUTE GROUP_READ GROUP_EXECUTE WORLD_READ WORLD_EXECUTE)
set(CPACK_COMPONENTS_ALL agent hub)
set(CPACK_DEB_COMPONENT_INSTALL ON)
set(CPACK_DEBIAN_FILE_NAME DEB-DEFAULT)
set(CPACK_DEBIAN_PACKAGE_RELEASE 1)
set(CPACK_DEBIAN_PACKAGE_ARCHITECTURE ${SOVDEV_DEB_ARCH})
set(CPACK_DEBIAN_PACKAGE_SECTION admin)
set(CPACK_DEBIAN_PACKAGE_PRIORITY optional)
set(CPACK_DEBIAN_PACKAGE_SHLIBDEPS ON)
set(CPACK_DEBIAN_PACKAGE_CONTROL_STRICT_PERMISSION ON)
set(CPACK_DEBIAN_PACKAGE_DEPENDS "adduser, init-system-helpers (>= 1.54~)")

set(CPACK_DEBIAN_AGENT_PACKAGE_NAME sovdev-agent)
set(CPACK_DEBIAN_AGENT_DESCRIPTION
  "keeps a Kubernetes cluster's service stack in sync with a hub
SovDev Edge Sync agent: follows signed catalogs over MQTT v5, pulls the
bundles meant for this cluster chunk by chunk, verifies every byte against
Ed25519-signed manifests, caches them in SQLite so the site keeps working
offline, applies them, and reports its status back to the hub.

Runs as the sovdev system user under a hardened systemd unit (not enabled
on install: configure /etc/sovdev/agent.toml first).")
set(CPACK_DEBIAN_AGENT_PACKAGE_CONTROL_EXTRA "${SOVDEV_agent_CONTROL}")

set(CPACK_DEBIAN_HUB_PACKAGE_NAME sovdev-hub)
set(CPACK_DEBIAN_HUB_DESCRIPTION
  "builds, signs and serves service-stack bundles to SovDev agents
SovDev Edge Sync hub: renders each environment's Kubernetes manifests into
zstd-compressed, Ed25519-signed bundles, publishes signed catalogs over
MQTT v5, answers the agents' fetch requests with chunks and deltas, and
records the fleet's status.

Runs as the sovdev-hub system user under a hardened systemd unit (not
enabled on install: create the online key and trust root and set the broker first).")
set(CPACK_DEBIAN_HUB_PACKAGE_CONTROL_EXTRA "${SOVDEV_hub_CONTROL}")

include(CPack)
