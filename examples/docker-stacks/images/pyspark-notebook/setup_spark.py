import argparse
parser = argparse.ArgumentParser()
print("download spark")
