//! Python packaging for cog-rs: PEP 440/508/425/427, index client, resolver, wheel to layer
