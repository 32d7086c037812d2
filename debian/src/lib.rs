//! Debian/Ubuntu archive client, dependency resolver and .deb to layer, without apt
