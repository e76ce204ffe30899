{ hosts.web.adress = "10.0.0.1"; }
