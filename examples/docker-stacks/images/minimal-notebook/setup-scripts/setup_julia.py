print("download julia")
