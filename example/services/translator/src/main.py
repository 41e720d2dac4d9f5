print("translator")
