import requests
print(requests.get("http://localhost:8888/api").status_code)
