"""Optional bridges to other systems (install their extra: `pip install "srgan[ray]"`)."""
