SIZES = ["s", "m", "l"]
