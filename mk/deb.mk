# `make deb`: the Debian package libnginx-mod-http-qcc (debian/), built
# with Debian's own tooling: dpkg-buildpackage, debhelper and nginx-dev's
# dh-sequence-nginx (nginx's configure with Debian's flags, the module
# loaded by `nginx -t` as its test, the modules-available snippet and the
# nginx-abi-* dependency from dh_nginx).  It builds from a copy of the
# sources in build/deb/src, so the working tree stays as it is; the .deb
# lands in build/deb/.

DEB_VERSION := $(shell dpkg-parsechangelog -l debian/changelog -S Version \
                 2>/dev/null)
DEB_ARCH    := $(shell dpkg --print-architecture 2>/dev/null)
DEB_PKG     := $(B)/deb/libnginx-mod-http-qcc_$(DEB_VERSION)_$(DEB_ARCH).deb
DEB_FILES   := config $(CORE_SRCS) $(CORE_HDRS) $(NGX_SRCS) $(NGX_HDRS) \
               README.md conf/qcc.conf conf/prometheus-alerts.yml \
               debian/control debian/rules debian/changelog \
               debian/copyright debian/source/format \
               $(wildcard debian/*.examples debian/*.docs)

.PHONY: deb

deb: $(DEB_PKG)
	@echo "deb: $<"

$(DEB_PKG): $(DEB_FILES)
	rm -rf $(B)/deb
	mkdir -p $(B)/deb/src
	cp --parents $(DEB_FILES) $(B)/deb/src/
	cd $(B)/deb/src && DEB_BUILD_OPTIONS="parallel=$$(nproc)" \
	    dpkg-buildpackage -b --no-sign > ../build.log 2>&1 \
	    || { tail -40 ../build.log; exit 1; }
	@ls $@ > /dev/null

# the tooling of `make deb`; python3-yaml for t/073-alerts.t
EXTRA_DEB_PKGS += debhelper dpkg-dev fakeroot python3-yaml
