from client.desktop.app import main

main()
